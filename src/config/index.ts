/** The config edge: YAML file -> validated, normalized Config; link -> attach entry. */
export { loadConfig, type LoadOptions } from './load.js'
export { parseConfig } from './validate.js'
export { matchLink, compileMatcher, namesOtherNamespaces, netnsMatches, type LinkMatcher } from './match.js'
export { ConfigError, formatKeyPath, type ConfigErrorFields, type KeyPath } from './errors.js'
export { statProblems, type StatLike } from './permissions.js'
export { KNOWN_KINDS, kindHints, type KindHint } from './kinds.js'
export { configSchema, SCHEMA_ID } from './schema.js'
export {
  DEFAULT_CONFIG_PATH,
  DEFAULT_NETNS,
  DEFAULT_NETNS_DIRS,
  DEFAULTS,
  entryLabel,
  HOST_NETNS,
  NO_KIND,
  ON_EXIT_VALUES,
  type AttachEntry,
  type Config,
  type ControlGroup,
  type LinkIdentity,
  type MetricsEndpoint,
  type OnExit,
} from './types.js'
