-- The dashboard's tokens per day by model, over every key, reads this index
-- alone: grouped by exactly these expressions it needs no sort and no row.
CREATE INDEX usage_quarter_model ON usage ((created_at / 900), model, total_tokens);
