"""Supervision analytics: the analytics store, ingestion, figures, hot-issue early warning, monthly report.

`analytics.rasa_broker` is loaded by the Rasa server (Python 3.10, Rasa's SQLAlchemy 1.4); every other
module runs in the service environment. Keep this file free of imports so both sides can load the package.
"""
