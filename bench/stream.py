"""Former stream benchmark, folded into :mod:`bench.throughput` (same baseline, one table).

    python -m bench.stream [--events 100000]

runs ``python -m bench.throughput --shapes native-env`` with the same arguments: the raw aiokafka + JSON
baseline, the Normalizer alone and the Faust worker on native events in envelopes, with the spend check.
"""

from __future__ import annotations

import sys

from bench import throughput


def main() -> None:
    if not any(a == "--shapes" or a.startswith("--shapes=") for a in sys.argv[1:]):
        sys.argv[1:1] = ["--shapes", "native-env"]
    throughput.main()


if __name__ == "__main__":
    main()
