"""Knowledge base of the hotline: content (YAML data) and hybrid retrieval (a library, no framework imports)."""
