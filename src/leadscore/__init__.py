"""leadscore: point-in-time lead scoring for wealth-management sales teams."""

__version__ = "0.1.0"
