import { SessionClient, type SessionResponse } from './session-client.js';

/** A GraphQL client over HTTP that keeps its session token like SessionClient (cookie or bearer). */
export class GraphQLClient extends SessionClient {
  /** Sends one operation to /graphql; the answer's body is `{ data, errors }`. */
  operation(query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}): Promise<SessionResponse> {
    return this.post('/graphql', variables === undefined ? { query } : { query, variables }, headers);
  }

  override fork(): GraphQLClient {
    return new GraphQLClient(this.baseUrl, this.transport, this.token);
  }
}
