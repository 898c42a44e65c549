"""ibot.sim: a TWS-protocol server around the matching engine, for any IB API client."""
