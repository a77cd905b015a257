import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { PARSED_VARIABLES } from '../../src/config/environment.js';
import { describeVariables, VARIABLES } from '../../src/config/variables.js';

const host = { hostname: 'box', pid: 42 };

function issuesOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env, host);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

describe('configuration from the environment', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({}, host);
    expect(config.pool).to.equal('default');
    expect(config.memberId).to.equal('box-42');
    expect(config.port).to.equal(8080);
    expect(config.advertiseUrl).to.equal('http://127.0.0.1:8080');
    expect(config.etcd.endpoints).to.deep.equal(['http://127.0.0.1:2379']);
    expect(config.etcd.prefix).to.equal('/service-pool-leader');
    expect(config.lease.ttlSeconds).to.equal(5);
    expect(config.log.level).to.equal('info');
  });

  it('takes MEMBER_ID, else POD_NAME, and builds ADVERTISE_URL from POD_IP and PORT', () => {
    expect(loadConfig({ POD_NAME: 'spl-7d9f-x2' }, host).memberId).to.equal('spl-7d9f-x2');
    expect(loadConfig({ POD_NAME: 'pod', MEMBER_ID: 'a' }, host).memberId).to.equal('a');
    const config = loadConfig({ POD_IP: '10.1.2.3', PORT: '9000' }, host);
    expect(config.advertiseUrl).to.equal('http://10.1.2.3:9000');
  });

  it('puts an IPv6 POD_IP in brackets in the default ADVERTISE_URL, and refuses a POD_IP that is no IP', () => {
    expect(loadConfig({ POD_IP: 'fd00::1', PORT: '8080' }, host).advertiseUrl).to.equal(
      'http://[fd00::1]:8080',
    );
    expect(issuesOf({ POD_IP: 'pod-7' })[0]).to.match(
      /^invalid POD_IP="pod-7": expected an IPv4 or IPv6 address/,
    );
  });

  it('parses a comma list of etcd endpoints and trims blanks', () => {
    const config = loadConfig({ ETCD_ENDPOINTS: 'http://e0:2379, http://e1:2379,,' }, host);
    expect(config.etcd.endpoints).to.deep.equal(['http://e0:2379', 'http://e1:2379']);
  });

  it('names the service a member runs: SERVICE_NAME, else the echo service of serve', () => {
    expect(loadConfig({}, host).service).to.equal('service-pool-leader');
    expect(loadConfig({ SERVICE_NAME: '@acme/orders' }, host).service).to.equal('@acme/orders');
    expect(issuesOf({ SERVICE_NAME: 'orders service' })[0]).to.match(
      /^invalid SERVICE_NAME="orders service": expected a service name of 1-128 letters/,
    );
  });

  it('a member is a candidate for leadership unless CANDIDATE=false', () => {
    expect(loadConfig({}, host).candidate).to.equal(true);
    expect(loadConfig({ CANDIDATE: 'false' }, host).candidate).to.equal(false);
    expect(loadConfig({ CANDIDATE: ' true ' }, host).candidate).to.equal(true);
    expect(issuesOf({ CANDIDATE: 'no' })[0]).to.equal(
      'invalid CANDIDATE="no": expected true or false',
    );
  });

  it('serves the status page and /simple-work unless STATUS_PAGE=false or SIMPLE_WORK=false', () => {
    expect(loadConfig({}, host)).to.deep.include({ statusPage: true, simpleWork: true });
    expect(loadConfig({ STATUS_PAGE: 'false' }, host)).to.deep.include({
      statusPage: false,
      simpleWork: true,
    });
    expect(loadConfig({ SIMPLE_WORK: 'false' }, host)).to.deep.include({
      statusPage: true,
      simpleWork: false,
    });
  });

  it('treats an empty value as unset', () => {
    expect(loadConfig({ PORT: '' }, host).port).to.equal(8080);
  });

  it('rejects endpoints and URLs that are not http(s)', () => {
    expect(issuesOf({ ETCD_ENDPOINTS: 'etcd:2379' })[0]).to.match(
      /^invalid ETCD_ENDPOINTS="etcd:2379": expected/,
    );
    expect(issuesOf({ ADVERTISE_URL: 'ftp://x' })[0]).to.match(/^invalid ADVERTISE_URL/);
    expect(
      issuesOf({ ADVERTISE_URL: 'http://$(POD_IP):8080' })[0],
      'unexpanded by Kubernetes',
    ).to.match(/^invalid ADVERTISE_URL/);
  });

  it('rejects timing that would break the lease safety model', () => {
    expect(issuesOf({ LEASE_TTL_SECONDS: '2', ETCD_CALL_TIMEOUT_MS: '2000' })[0]).to.match(
      /^invalid ETCD_CALL_TIMEOUT_MS="2000": expected less than the lease TTL/,
    );
    expect(issuesOf({ LEASE_TTL_SECONDS: '2', LEASE_SAFETY_MARGIN_MS: '1000' })[0]).to.match(
      /^invalid LEASE_SAFETY_MARGIN_MS/,
    );
  });

  it('documents every variable it parses, with its default, for --help', () => {
    const help = describeVariables();
    for (const variable of VARIABLES) expect(help).to.include(variable.name);
    expect(
      PARSED_VARIABLES.filter((name) => !VARIABLES.some((v) => v.name === name)),
    ).to.deep.equal([]);
    expect(help).to.match(/PORT\s+HTTP port\. \(default: 8080\)/);
  });
});
