-- The unit number this storage belongs to, written by the first logic
-- service that opens it: a replica started with another unit number is
-- refused, so no order is ever numbered for a unit that does not hold it.
CREATE TABLE IF NOT EXISTS unit_identity (
  id      INT NOT NULL PRIMARY KEY,
  unit_id INT NOT NULL,
  CONSTRAINT unit_identity_one_row CHECK (id = 1)
) ENGINE=InnoDB;
