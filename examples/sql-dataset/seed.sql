-- A small customer table for the sql-dataset example: who churned, and what
-- we knew about them. Deterministic (setseed), so every run gets the same rows.
DROP TABLE IF EXISTS customers;
CREATE TABLE customers (
  id             serial PRIMARY KEY,
  tenure_months  integer NOT NULL,
  monthly_spend  numeric(8,2),          -- NULL for some rows: preprocess.missing fills them
  support_calls  integer NOT NULL,
  plan           text NOT NULL,          -- categorical: one-hot encoded
  churned        boolean NOT NULL,       -- the label
  updated_at     timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z'
);

SELECT setseed(0.42);

INSERT INTO customers (tenure_months, monthly_spend, support_calls, plan, churned)
SELECT tenure, spend, calls, plan,
       -- churn is likelier with short tenure, many support calls and the basic plan
       (random() < 0.08 + 0.5 * (calls / 8.0) + 0.3 * (1 - tenure / 72.0) * (CASE WHEN plan = 'basic' THEN 1 ELSE 0.4 END) - 0.1)
FROM (
  SELECT (1 + floor(random() * 72))::int AS tenure,
         CASE WHEN random() < 0.03 THEN NULL ELSE round((20 + random() * 80)::numeric, 2) END AS spend,
         floor(random() * random() * 9)::int AS calls,
         (ARRAY['basic', 'standard', 'pro'])[1 + floor(random() * 3)::int] AS plan
  FROM generate_series(1, 2000)
) g;
