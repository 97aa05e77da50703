/**
 * The plan of the VRRP shape (`npm run topology -- --vrrp`), shared by the launcher in the root
 * namespace (vrrp.ts) and its part inside the app namespace (app-namespace.ts): the namespaces and
 * their addresses, the VIP and its ports, and the messages the two processes exchange over
 * Node's IPC channel.
 *
 *   sb-<id>-lb1  10.231.1.11  HAProxy + keepalived MASTER (priority 101) ┐ VIP 10.231.1.100
 *   sb-<id>-lb2  10.231.1.12  HAProxy + keepalived BACKUP (priority 100) ┘ (check: HAProxy's pid)
 *   sb-<id>-app  10.231.1.10  Redis Cluster, API/projector/dispatcher processes, the
 *                             registry -> HAProxy sync (one loop per HAProxy, through the
 *                             runtime sockets, which are files) and the forwarder
 */
import { HAPROXY_DEFAULTS } from '../haproxy/config.ts';
import { NetnsStar } from '../netns.ts';
import type { LauncherStatus } from '../status.ts';

/** Private /24 that exists only inside this run's namespaces (each run has its own bridge). */
export const VRRP_SUBNET = '10.231.1';
export const VIP = `${VRRP_SUBNET}.100`;
const VRRP_HOSTS = [
  { name: 'app', octet: 10 },
  { name: 'lb1', octet: 11 },
  { name: 'lb2', octet: 12 },
];
export const LB_ROLES = [
  { name: 'lb1', role: 'MASTER', priority: 101 },
  { name: 'lb2', role: 'BACKUP', priority: 100 },
] as const;
/** HAProxy's ports inside the lb namespaces (the VIP's ports): fixed, the namespaces are private. */
export const VIP_PORTS = {
  http: HAPROXY_DEFAULTS.httpPort,
  tls: HAPROXY_DEFAULTS.tlsPort,
  stats: HAPROXY_DEFAULTS.statsPort,
  redis: HAPROXY_DEFAULTS.redisPort,
} as const;
export type Forwarded = keyof typeof VIP_PORTS;

/** The namespaces of run `id` (a new id when omitted). */
export function vrrpStar(id?: string, exitHook = true): NetnsStar {
  return new NetnsStar({ ...(id ? { id } : {}), subnet: VRRP_SUBNET, hosts: VRRP_HOSTS, exitHook });
}

/** Where keepalived's check script is copied when the repository path is not root-only. */
export const scriptDir = (id: string) => `/run/sb-${id}-keepalived`;

export interface LbInfo {
  name: string;
  role: string;
  priority: number;
  ns: string;
  address: string;
  pidfile: string;
  socket: string;
  keepalivedLog: string;
}

export interface VrrpInfo {
  vipHolder: string | undefined;
  lbs: LbInfo[];
  instances: string[];
  cluster: string[];
  haproxyCheckUser: string;
}

/** Parent -> child: a listening socket to accept on and forward to VIP:port. (Stop = SIGTERM.) */
export type ToApp = { type: 'forward'; name: Forwarded; port: number };
/** Child -> parent messages. */
export type FromApp =
  | { type: 'hello' }
  | { type: 'forwarding'; name: Forwarded }
  | { type: 'ready'; info: VrrpInfo }
  /** The supervised processes, on every change (the launcher serves it as /status). */
  | { type: 'status'; status: LauncherStatus }
  | { type: 'failed'; message: string };
