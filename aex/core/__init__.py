"""The pure market core: money, fees, bid scoring, reputation and tiers, the ledger, lifecycles,
certificates.

Nothing here performs I/O, reads a clock, draws randomness or holds global state: time, seeds,
keys, weights and limits are arguments (tests/core/test_purity.py enforces it).

The package surface is the union of the modules' own `__all__` lists (each module decides what
it exports); tests/test_public_api.py checks that no name is exported by two modules, so a star
import never shadows silently.
"""

from aex.core import (
    agentcard,
    billing,
    breaker,
    calibration,
    certs,
    challenge,
    credentials,
    criteria,
    delegation,
    durations,
    endpoints,
    events,
    fees,
    jcs,
    json_values,
    jws,
    ledger,
    lifecycle,
    mandates,
    market,
    matching,
    money,
    notifications,
    payment_rule,
    plans,
    reasons,
    reputation,
    rules,
    scoring,
    status_list,
    text,
    webhook_signing,
    x509_export,
)
from aex.core.agentcard import *  # noqa: F403
from aex.core.billing import *  # noqa: F403
from aex.core.breaker import *  # noqa: F403
from aex.core.calibration import *  # noqa: F403
from aex.core.certs import *  # noqa: F403
from aex.core.challenge import *  # noqa: F403
from aex.core.credentials import *  # noqa: F403
from aex.core.criteria import *  # noqa: F403
from aex.core.delegation import *  # noqa: F403
from aex.core.durations import *  # noqa: F403
from aex.core.endpoints import *  # noqa: F403
from aex.core.events import *  # noqa: F403
from aex.core.fees import *  # noqa: F403
from aex.core.jcs import *  # noqa: F403
from aex.core.json_values import *  # noqa: F403
from aex.core.jws import *  # noqa: F403
from aex.core.ledger import *  # noqa: F403
from aex.core.lifecycle import *  # noqa: F403
from aex.core.mandates import *  # noqa: F403
from aex.core.market import *  # noqa: F403
from aex.core.matching import *  # noqa: F403
from aex.core.money import *  # noqa: F403
from aex.core.notifications import *  # noqa: F403
from aex.core.payment_rule import *  # noqa: F403
from aex.core.plans import *  # noqa: F403
from aex.core.reasons import *  # noqa: F403
from aex.core.reputation import *  # noqa: F403
from aex.core.rules import *  # noqa: F403
from aex.core.scoring import *  # noqa: F403
from aex.core.status_list import *  # noqa: F403
from aex.core.text import *  # noqa: F403
from aex.core.webhook_signing import *  # noqa: F403
from aex.core.x509_export import *  # noqa: F403

# The modules whose exports make up the package surface; a new core module joins here.
EXPORTING_MODULES = (
    agentcard,
    billing,
    breaker,
    calibration,
    certs,
    challenge,
    credentials,
    criteria,
    delegation,
    durations,
    endpoints,
    events,
    fees,
    jcs,
    jws,
    json_values,
    ledger,
    lifecycle,
    mandates,
    market,
    matching,
    money,
    notifications,
    payment_rule,
    plans,
    reasons,
    reputation,
    rules,
    scoring,
    status_list,
    text,
    webhook_signing,
    x509_export,
)

__all__ = sorted({name for module in EXPORTING_MODULES for name in module.__all__})
