import type { z } from 'zod';
import { BrainstemError } from '../../src/errors.js';

/**
 * A GET route's query, read by its schema (strict: a parameter the route does
 * not take is refused, never ignored); a bad one is INVALID_REQUEST naming the
 * parameter, whether its value is wrong or the route does not take it.
 */
export function queryOf<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const param = issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys[0] : undefined);
  throw new BrainstemError('INVALID_REQUEST', `${param ?? 'query'}: ${issue?.message ?? 'invalid'}`, param);
}
