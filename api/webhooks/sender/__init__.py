"""The webhook sender process: consumes public events, records deliveries, delivers them."""
