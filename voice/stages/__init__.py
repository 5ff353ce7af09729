"""The stages of a call's pipeline, one small class per file."""
