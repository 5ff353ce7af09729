"""Build tools for the models the runtime loads (not imported by the services).

- e5_from_pypi: a transformers copy of multilingual-e5-small rebuilt from PyPI packages;
- finetune: that model domain-adapted to the knowledge base by contrastive fine-tuning.
"""
