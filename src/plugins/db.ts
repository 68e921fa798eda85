import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Sql } from '../db/client.ts';

declare module 'fastify' {
  interface FastifyInstance {
    sql: Sql;
  }
}

/** The pool as `app.sql`; closed when the app closes, after in-flight requests. */
async function db(app: FastifyInstance, options: { sql: Sql }): Promise<void> {
  app.decorate('sql', options.sql);
  app.addHook('onClose', async () => {
    await options.sql.end({ timeout: 5 });
  });
}

export default fp(db, { name: 'db', fastify: '5.x' });
