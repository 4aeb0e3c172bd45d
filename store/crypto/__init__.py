"""Envelope encryption, key hierarchy, KMS and item signatures."""
