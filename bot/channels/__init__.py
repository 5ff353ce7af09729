"""Rasa input channels of the hotline assistant (one channel per file).

Rasa imports this package at start (credentials.yml), after configuring its own logging: from here on
its log lines (whole utterances, parse data, events) are masked (common.privacy.install_masking).
"""
from common.privacy import install_masking

install_masking()
