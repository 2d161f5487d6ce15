"""encoding_com provider function: poll on the EventBridge schedule, webhook on the HTTP API (CONTRACT)."""

from transcode_core.lambda_entry import provider_handler

lambda_handler = provider_handler("encoding_com")
