"""One-shot (weight-sharing) architecture search: DARTS, PC-DARTS and their derivation."""
