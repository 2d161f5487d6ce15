"""The provider registry: one module per provider, each exporting SPEC."""

from __future__ import annotations

import importlib

from transcode_core.providers.base import ProviderSpec

PROVIDER_IDS = ("encoding_com", "transparent_edge", "xvid", "vod_station")


def get_spec(provider: str) -> ProviderSpec:
    """The provider's spec; KeyError for an id that is not a provider."""
    if provider not in PROVIDER_IDS:
        raise KeyError(provider)
    module = importlib.import_module(f"transcode_core.providers.{provider}")
    return module.SPEC
