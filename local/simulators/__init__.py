"""Provider simulators: real HTTP servers on 127.0.0.1 that speak each provider's documented API.

Tests and the local run use them instead of the internet; jobs advance through the provider's real
lifecycle on command (`advance`) or as time passes (`tick`)."""
