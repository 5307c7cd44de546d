-- The event relay's leases: one row per relay, the holder it belongs to
-- until lease_until (Unix microseconds), and its cursor (every outbox event
-- up to it was published). The lease and the cursor share a row, so that a
-- relay that lost its lease cannot move the cursor.
CREATE TABLE IF NOT EXISTS relay_leases (
  name        TEXT    NOT NULL PRIMARY KEY,
  holder      TEXT    NOT NULL,
  lease_until INTEGER NOT NULL,
  `cursor`    INTEGER NOT NULL,
  update_time INTEGER NOT NULL
);
