// Apollo Federation 2 composition of the gateway's subgraph SDL (from `_service { sdl }`) with a small
// city-level subgraph that extends Case and Cluster by their keys, as a supergraph would.
// Usage: node compose.mjs <subgraph.graphql>. Prints JSON: {errors: [...], hints: n, supergraph: bool}.
import { readFileSync } from "node:fs";
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";

const sdl = readFileSync(process.argv[2], "utf8");
const hasCluster = /\btype Cluster\b[^{]*@key/.test(sdl);
const city = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Case @key(fields: "id", resolvable: false) { id: ID! }
  ${hasCluster ? 'type Cluster @key(fields: "id", resolvable: false) { id: ID! }' : ""}
  type CityTicket { id: ID! case: Case ${hasCluster ? "cluster: Cluster" : ""} }
  type Query { cityTickets: [CityTicket!]! }
`;
const result = composeServices([
  { name: "minsheng", url: "http://minsheng/graphql", typeDefs: parse(sdl) },
  { name: "city", url: "http://city/graphql", typeDefs: parse(city) },
]);
process.stdout.write(JSON.stringify({
  errors: (result.errors || []).map((e) => e.message),
  hints: (result.hints || []).length,
  supergraph: Boolean(result.supergraphSdl),
  cluster: hasCluster,
}));
