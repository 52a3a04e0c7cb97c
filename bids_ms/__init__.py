"""bids-ms: morphometric-similarity networks and their transcriptomic correlates, as a BIDS-App.

Martins et al. 2022, *PAIN* 163:e759–e773, doi:10.1097/j.pain.0000000000002480 ("Transcriptional and cellular signatures of
cortical morphometric remodelling in chronic pain"), made into a tool.
"""

__version__ = "0.1.0"
__url__ = "https://github.com/bids-ms/bids-ms"
__all__ = ["__version__", "__url__"]
