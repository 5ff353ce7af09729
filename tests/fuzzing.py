"""How long the fuzzers run: a short form in `make test`, a long one in `make fuzz` (docs/reliability.md "Fuzzers").

FUZZ_EXAMPLES sets the examples per property (default 60: a few seconds a file); `make fuzz` sets thousands and
FUZZ_SEED=random for fresh inputs each run (the short form is derandomised: a failure in CI is the same
failure on a developer's machine). Hypothesis keeps no example database: a found crash becomes an
`@example(...)` in the test file, so it stays a test in the repository.
"""
from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=os.environ.get("FUZZ_SEED", "") != "random",
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

# any JSON value, and anything a peer may send instead of the message it should (text, bytes, other JSON)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
GARBAGE = st.text(max_size=60) | st.binary(max_size=60) | JSON.map(json.dumps)
