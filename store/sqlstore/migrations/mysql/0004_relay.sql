-- The event relay's leases: one row per relay, the holder it belongs to
-- until lease_until (Unix microseconds), and its cursor (every outbox event
-- up to it was published). The lease and the cursor share a row, so that a
-- relay that lost its lease cannot move the cursor.
CREATE TABLE IF NOT EXISTS relay_leases (
  name        VARCHAR(64)  NOT NULL PRIMARY KEY,
  holder      VARCHAR(128) NOT NULL,
  lease_until BIGINT       NOT NULL,
  `cursor`    BIGINT       NOT NULL,
  update_time BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
