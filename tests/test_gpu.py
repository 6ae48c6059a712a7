"""The CUDA path (bf16 autocast in training, sampling on the GPU); skipped without a GPU."""

import numpy as np
import pytest
import torch
from image_factories import make_images

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_dcgan_trains_and_samples_on_cuda():
    from imagina.image.model import ConditionalDCGAN, DCGANConfig

    X, y = make_images()
    gan = ConditionalDCGAN(DCGANConfig(steps=5, batch_size=8), device="cuda").fit(X, y, progress=False)
    assert next(gan.generator_.parameters()).is_cuda
    images, labels = gan.sample(6, seed=0)
    assert images.shape == (6, 16, 16, 1) and images.dtype == np.uint8
    assert np.isfinite([h["loss_d"] for h in gan.history_]).all()


def test_reference_classifier_on_cuda():
    from imagina.core.evaluation import accuracy, train_classifier
    from imagina.image.evaluate import ImageEvalTask

    X, y = make_images()
    task = ImageEvalTask()
    task.steps = 5
    x = task.fit(X).prepare(X)
    model = train_classifier(task, 3, (x, torch.as_tensor(y)), seed=0, device="cuda")
    assert 0.0 <= accuracy(model, x, torch.as_tensor(y)) <= 1.0
