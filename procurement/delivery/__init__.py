"""Delivery status: the outbox as Innkjøpsseksjonen sees it (waiting, failing and dead jobs),
a person's retry of a failed job, and the one alert about each dead letter."""
