"""``python -m pytest_algoperf.score``: see ``pytest_algoperf.score.command``."""

from pytest_algoperf.score.command import main

raise SystemExit(main())
