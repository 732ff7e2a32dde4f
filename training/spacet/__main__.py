"""`python -m training.spacet --config <yaml>`: see training/spacet/train.py."""

from training.spacet.train import main

raise SystemExit(main())
