-- Orders, refunds, the order-event outbox and the per-unit sequence.
-- Times are Unix microseconds (0 = unset); amounts are in the smallest currency unit.
CREATE TABLE IF NOT EXISTS orders (
  order_no        VARCHAR(40)  NOT NULL PRIMARY KEY,
  mchid           VARCHAR(32)  NOT NULL,
  out_trade_no    VARCHAR(32)  NOT NULL,
  description     VARCHAR(127) NOT NULL,
  total           BIGINT       NOT NULL,
  currency        CHAR(3)      NOT NULL,
  trade_state     VARCHAR(16)  NOT NULL,
  payment_id      VARCHAR(64)  NOT NULL DEFAULT '',
  refunded        BIGINT       NOT NULL DEFAULT 0,
  abandoned_units VARCHAR(255) NOT NULL DEFAULT '',
  create_time     BIGINT       NOT NULL,
  update_time     BIGINT       NOT NULL,
  success_time    BIGINT       NOT NULL DEFAULT 0,
  close_time      BIGINT       NOT NULL DEFAULT 0,
  version         INT          NOT NULL DEFAULT 1,
  UNIQUE KEY orders_mchid_out_trade_no (mchid, out_trade_no),
  CONSTRAINT orders_refunded_bounds CHECK (refunded >= 0 AND refunded <= total)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS refunds (
  id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  mchid         VARCHAR(32)  NOT NULL,
  out_refund_no VARCHAR(64)  NOT NULL,
  order_no      VARCHAR(40)  NOT NULL,
  amount        BIGINT       NOT NULL,
  currency      CHAR(3)      NOT NULL,
  reason        VARCHAR(80)  NOT NULL DEFAULT '',
  status        VARCHAR(16)  NOT NULL,
  create_time   BIGINT       NOT NULL,
  UNIQUE KEY refunds_mchid_out_refund_no (mchid, out_refund_no),
  KEY refunds_order_no (order_no),
  CONSTRAINT refunds_order FOREIGN KEY (order_no) REFERENCES orders (order_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS order_events (
  id          BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_no    VARCHAR(40) NOT NULL,
  event_type  VARCHAR(32) NOT NULL,
  payload     TEXT        NOT NULL,
  create_time BIGINT      NOT NULL,
  KEY order_events_order_no (order_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sequences (
  name       VARCHAR(32) NOT NULL PRIMARY KEY,
  next_value BIGINT      NOT NULL
) ENGINE=InnoDB;
INSERT IGNORE INTO sequences (name, next_value) VALUES ('order', 1);
