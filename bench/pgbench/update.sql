\set id random(1, 16)
UPDATE raw_tickets SET content = 'raw ' || :client_id, update_time = now(), version = version + 1 WHERE id = :id;
