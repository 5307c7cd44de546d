-- The merchant-key directory's attempts: the attempt that made each order,
-- the attempts superseded before they made one (a create carrying one is
-- refused), and why a closed order was closed.
ALTER TABLE orders ADD COLUMN attempt BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN close_reason VARCHAR(16) NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS superseded_attempts (
  mchid        VARCHAR(32)     NOT NULL,
  out_trade_no VARCHAR(32)     NOT NULL,
  attempt      BIGINT UNSIGNED NOT NULL,
  create_time  BIGINT          NOT NULL,
  PRIMARY KEY (mchid, out_trade_no, attempt)
) ENGINE=InnoDB;
