"""The provider registry: one module per provider, each exporting SPEC (what their job ids look like: job_ids)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the registry (its ids) loads no adapter
    from transcode_core.providers.base import ProviderSpec

PROVIDER_IDS = ("encoding_com", "transparent_edge", "xvid", "vod_station")


def get_spec(provider: str) -> ProviderSpec:
    """The provider's spec; KeyError for an id that is not a provider."""
    if provider not in PROVIDER_IDS:
        raise KeyError(provider)
    module = importlib.import_module(f"transcode_core.providers.{provider}")
    return module.SPEC
