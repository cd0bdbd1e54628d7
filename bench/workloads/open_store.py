"""Open a store once, so the library creates (or migrates) its schema in an empty database. Prints ``{}``."""

from __future__ import annotations

import _common as c


def main() -> None:
    args = c.parse_args(lambda parser: parser.add_argument("--db-uri", required=True))
    c.client(args.impl, args.db_uri).get_experiment_by_name("bench")
    c.emit()


if __name__ == "__main__":
    main()
