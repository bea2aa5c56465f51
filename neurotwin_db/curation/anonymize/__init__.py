"""Anonymization: turn a raw BIDS dataset into a shareable one (plan, then apply).

Pseudonyms and date shifts come from a key that lives outside every dataset
(:func:`load_key`).
"""

from neurotwin_db.curation.anonymize._key import PseudonymKey, default_key_path, load_key

__all__ = ["PseudonymKey", "default_key_path", "load_key"]
