/**
 * Applies pending migrations to DATABASE_URL_UNPOOLED, else DATABASE_URL (the
 * server also does this at start). Exits non-zero on any failure, having applied nothing.
 */
import { ConfigError, loadConfig, type Config } from '../src/config.ts';
import { createSql } from '../src/db/client.ts';
import { migrate } from '../src/db/migrate.ts';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  console.error(`migrate: invalid configuration: ${err instanceof ConfigError ? err.message : String(err)}`);
  process.exit(1);
}
if (config.databaseUrl === undefined) {
  console.error('migrate: DATABASE_URL is not set (the embedded database is migrated by npm start itself)');
  process.exit(1);
}
// Schema changes go over the direct connection when DATABASE_URL is a pooler's.
const sql = createSql(config.databaseUrlUnpooled ?? config.databaseUrl, { max: 1 });
try {
  const applied = await migrate(sql);
  console.log(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'nothing to apply: the schema is up to date');
} catch (err) {
  console.error(`migrate: failed, nothing applied: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await sql.end({ timeout: 5 });
}
