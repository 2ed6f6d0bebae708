-- identity is created by POSTGRES_DB; quota gets its own database.
CREATE DATABASE quota OWNER gateway;
