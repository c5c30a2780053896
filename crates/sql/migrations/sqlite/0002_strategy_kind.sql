-- The strategy's type (the spec's strategy: code, name, type).
ALTER TABLE sq_strategies ADD COLUMN kind TEXT NOT NULL DEFAULT '';
