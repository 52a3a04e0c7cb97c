"""Reading and writing: BIDS inputs, FreeSurfer stats, reference maps, expression, derivatives."""
