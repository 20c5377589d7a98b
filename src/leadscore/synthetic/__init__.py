"""The synthetic world: seeded vendor vintages, CRM exports and the truth behind them.

``generate_world`` writes a raw delivery folder with the real schema and the real traps
(see docs/design.md, "The synthetic world"); ``truth/`` holds the generating model's answers
and is never trained on.
"""

from leadscore.synthetic.manifest import VintageInfo, WorldManifest
from leadscore.synthetic.timeline import AS_OF, DELIVERY_LAG_DAYS, LABEL_WINDOW_DAYS
from leadscore.synthetic.world import generate_world

__all__ = [
    "AS_OF",
    "DELIVERY_LAG_DAYS",
    "LABEL_WINDOW_DAYS",
    "VintageInfo",
    "WorldManifest",
    "generate_world",
]
