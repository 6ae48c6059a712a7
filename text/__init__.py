"""imagina.text: class-conditional sentence generation (sequence VAE), text screening and evaluation."""

from imagina.text.data import TextCleaningConfig, load_texts, normalize_text
from imagina.text.embed import SentenceTransformerEmbedder, TextEmbedder, TokenCNN, text_embedder
from imagina.text.evaluate import TextEvalTask, tfidf_accuracy
from imagina.text.export import preview, write_items
from imagina.text.modality import MODALITY, TextModality
from imagina.text.model import ConditionalSeqVAE, SeqVAEConfig
from imagina.text.sanity import TextSanityConfig, distinct_n, ngram_overlap, self_bleu, text_sanity
from imagina.text.tokenizer import CharNgrams, TextTokenizer, WordVocab

__all__ = [
    "MODALITY",
    "CharNgrams",
    "ConditionalSeqVAE",
    "SentenceTransformerEmbedder",
    "SeqVAEConfig",
    "TextCleaningConfig",
    "TextEmbedder",
    "TextEvalTask",
    "TextModality",
    "TextSanityConfig",
    "TextTokenizer",
    "TokenCNN",
    "WordVocab",
    "distinct_n",
    "load_texts",
    "ngram_overlap",
    "normalize_text",
    "preview",
    "self_bleu",
    "text_embedder",
    "text_sanity",
    "tfidf_accuracy",
    "write_items",
]
