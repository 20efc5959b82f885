"""Retrieval evaluation on BEIR-layout datasets."""
