\set id random(1, 1000)
SELECT * FROM raw_tickets WHERE id = :id;
