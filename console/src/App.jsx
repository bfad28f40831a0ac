import { useEffect, useState } from 'react';
import {
  Alert,
  Button,
  Form,
  FormGroup,
  Label,
  Masthead,
  MastheadBrand,
  MastheadContent,
  MastheadMain,
  Nav,
  NavItem,
  NavList,
  Page,
  PageSection,
  PageSidebar,
  PageSidebarBody,
  TextInput,
  Title,
} from '@patternfly/react-core';
import { checkToken, getToken, onTokenChange, setToken, takeTokenFromUrl } from './api.js';
import { useMigrations } from './data.js';
import { Providers } from './pages/Providers.jsx';
import { Mappings } from './pages/Mappings.jsx';
import { Plans } from './pages/Plans.jsx';
import { PlanWizard } from './pages/PlanWizard.jsx';
import { PlanDetails } from './pages/PlanDetails.jsx';
import { Inventory } from './pages/Inventory.jsx';

const BASE = '/console';

// The app's routes are paths under /console/ (the coordinator answers them
// all with this app).
export function navigate(path) {
  window.history.pushState(null, '', BASE + path);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

function usePath() {
  const [path, setPath] = useState(window.location.pathname.slice(BASE.length) || '/');
  useEffect(() => {
    const f = () => setPath(window.location.pathname.slice(BASE.length) || '/');
    window.addEventListener('popstate', f);
    return () => window.removeEventListener('popstate', f);
  }, []);
  return path;
}

function Login() {
  const [value, setValue] = useState('');
  const [error, setError] = useState('');
  const submit = async (e) => {
    e.preventDefault();
    const why = await checkToken(value.trim());
    if (why) setError(why);
    else setToken(value.trim());
  };
  return (
    <PageSection>
      <Title headingLevel="h1">Sign in to the Ferry console</Title>
      <p style={{ margin: '1em 0' }}>
        Paste the token the coordinator printed at its start (it is also in its
        --console-token-file).
      </p>
      {error && <Alert variant="danger" isInline title={error} />}
      <Form onSubmit={submit} style={{ maxWidth: 520 }}>
        <FormGroup label="Token" isRequired fieldId="token">
          <TextInput id="token" type="password" value={value} onChange={(_, v) => setValue(v)} />
        </FormGroup>
        <Button type="submit" isDisabled={!value.trim()}>
          Sign in
        </Button>
      </Form>
    </PageSection>
  );
}

const NAV = [
  ['/providers', 'Providers for virtualization'],
  ['/plans', 'Plans for virtualization'],
  ['/mappings', 'Mappings for virtualization'],
  ['/inventory', 'Inventory'],
];

function Shell({ path }) {
  const { state } = useMigrations();
  let page;
  const m = /^\/plans\/([^/]+)\/([^/]+)$/.exec(path);
  if (path === '/plans/new') page = <PlanWizard />;
  else if (m) page = <PlanDetails ns={decodeURIComponent(m[1])} name={decodeURIComponent(m[2])} />;
  else if (path.startsWith('/plans')) page = <Plans />;
  else if (path.startsWith('/mappings')) page = <Mappings />;
  else if (path.startsWith('/inventory')) page = <Inventory />;
  else page = <Providers />;
  const masthead = (
    <Masthead>
      <MastheadMain>
        <MastheadBrand>
          <Title headingLevel="h1" size="lg" style={{ color: 'inherit' }}>
            Ferry · Migration Toolkit for Virtualization
          </Title>
        </MastheadBrand>
      </MastheadMain>
      <MastheadContent>
        <div style={{ display: 'flex', gap: 12, alignItems: 'center', marginLeft: 'auto' }}>
          <Label color={state === 'live' ? 'green' : 'orange'}>{state === 'live' ? 'Live' : 'Connecting…'}</Label>
          <Button variant="secondary" onClick={() => setToken('')}>
            Sign out
          </Button>
        </div>
      </MastheadContent>
    </Masthead>
  );
  const sidebar = (
    <PageSidebar>
      <PageSidebarBody>
        <Nav aria-label="Migration">
          <NavList>
            {NAV.map(([p, label]) => (
              <NavItem
                key={p}
                isActive={path.startsWith(p) || (p === '/providers' && path === '/')}
                onClick={(e) => {
                  e.preventDefault();
                  navigate(p);
                }}
                to={BASE + p}
              >
                {label}
              </NavItem>
            ))}
          </NavList>
        </Nav>
      </PageSidebarBody>
    </PageSidebar>
  );
  return (
    <Page masthead={masthead} sidebar={sidebar}>
      {page}
    </Page>
  );
}

export function App() {
  const [token, setTok] = useState(() => {
    takeTokenFromUrl();
    return getToken();
  });
  useEffect(() => onTokenChange(setTok), []);
  const path = usePath();
  if (!token) return <Login />;
  return <Shell path={path} />;
}
