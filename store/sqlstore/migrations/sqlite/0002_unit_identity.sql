-- The unit number this storage belongs to, written by the first logic
-- service that opens it: a replica started with another unit number is
-- refused, so no order is ever numbered for a unit that does not hold it.
CREATE TABLE IF NOT EXISTS unit_identity (
  id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  unit_id INTEGER NOT NULL
);
