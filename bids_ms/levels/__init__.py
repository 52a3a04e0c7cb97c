"""The two BIDS-App levels and the transcriptomic stage: orchestration, one call per paper step."""
