% make_reference.m -- external reference values for the tsodso test suite.
%
% Computed with MATPOWER itself (loadcase, rundcopf, runpf), i.e. entirely
% outside tsodso.  Run through make_reference.sh, which puts MATPOWER on the
% Octave path and sets the environment variables read below:
%   MATPOWER_DIR   MATPOWER root (holds lib/, data/, ...)
%   PGLIB_OPF_DIR  directory holding the pglib_opf_*.m files
%   OUT_DIR        where the three JSON files are written
%
% Output (numbers written with the shortest %.15g/%.16g/%.17g form that
% reads back to the identical double, Inf as Infinity; no timestamps, so
% reruns are byte-identical):
%   matpower_loadcase.json  per-case counts and sums, as loadcase returns them
%   matpower_dcopf.json     rundcopf objective, LMPs, dispatch, flow multipliers
%   matpower_pf.json        runpf (Newton) voltages and losses

1;  % marks this file as a script, so the helper functions below are allowed

%% ---------------------------------------------------------------- helpers
% Minimal JSON writer.  Objects are cell arrays {key1, val1; key2, val2; ...}
% (key order is kept as given), arrays are numeric row vectors or cells
% wrapped as {'__list__', {...}}, strings are char, booleans are logical.

function s = jnum(x)
  % shortest decimal string that round-trips to the same double
  % Non-finite values (e.g. PMAX = Inf in case59) are written the way Python's
  % json module writes and reads them: NaN, Infinity, -Infinity.
  if isnan(x)
    s = 'NaN';
    return;
  elseif isinf(x)
    if x > 0, s = 'Infinity'; else, s = '-Infinity'; end
    return;
  end
  for p = 15:17
    s = sprintf('%.*g', p, x);
    if str2double(s) == x
      return;
    end
  end
end

function s = jstr(x)
  x = strrep(x, '\', '\\');
  x = strrep(x, '"', '\"');
  x = regexprep(x, '[\n\r\t]', ' ');
  s = ['"' x '"'];
end

function s = jval(v, ind)
  nl = char(10);
  pad = repmat(' ', 1, ind + 2);
  close_pad = [nl repmat(' ', 1, ind)];
  if ischar(v)
    s = jstr(v);
  elseif islogical(v) && isscalar(v)
    if v, s = 'true'; else, s = 'false'; end
  elseif iscell(v) && numel(v) == 2 && ischar(v{1}) && strcmp(v{1}, '__list__')
    items = cellfun(@(e) jval(e, ind + 2), v{2}, 'UniformOutput', false);
    if isempty(items)
      s = '[]';
    else
      s = ['[' nl pad strjoin(items, [',' nl pad]) close_pad ']'];
    end
  elseif iscell(v)            % object: n x 2 cell of key / value
    if isempty(v)
      s = '{}';
      return;
    end
    items = cell(1, rows(v));
    for k = 1:rows(v)
      items{k} = [jstr(v{k, 1}) ': ' jval(v{k, 2}, ind + 2)];
    end
    s = ['{' nl pad strjoin(items, [',' nl pad]) close_pad '}'];
  elseif isnumeric(v) && isscalar(v)
    s = jnum(double(v));
  elseif isnumeric(v)         % numeric vector -> flat JSON array on one line
    items = arrayfun(@(e) jnum(double(e)), v(:)', 'UniformOutput', false);
    s = ['[' strjoin(items, ', ') ']'];
  else
    error('jval: unsupported value of class %s', class(v));
  end
end

function write_json(fname, obj)
  fid = fopen(fname, 'w');
  fputs(fid, jval(obj, 0));
  fputs(fid, char(10));
  fclose(fid);
end

function obj = keyed(keys, vals)
  % JSON object {"<key(i)>": vals(i)}, keys are integers (bus numbers, rows)
  obj = cell(numel(keys), 2);
  for i = 1:numel(keys)
    obj{i, 1} = sprintf('%d', keys(i));
    obj{i, 2} = vals(i);
  end
end

%% ---------------------------------------------------------------- setup
MP_DIR  = getenv('MATPOWER_DIR');
PG_DIR  = getenv('PGLIB_OPF_DIR');
OUT_DIR = getenv('OUT_DIR');
if isempty(MP_DIR) || isempty(PG_DIR) || isempty(OUT_DIR)
  error('make_reference: set MATPOWER_DIR, PGLIB_OPF_DIR and OUT_DIR (see make_reference.sh)');
end
if ~exist('loadcase', 'file')
  error('make_reference: MATPOWER is not on the Octave path (see make_reference.sh)');
end
MAX_BUS = 3000;
t_start = tic;

% MATPOWER column indices (from MATPOWER's own idx_* functions)
[PQ, PV, REF, NONE, BUS_I, BUS_TYPE, PD, QD, GS, BS, BUS_AREA, VM, VA, ...
 BASE_KV, ZONE, VMAX, VMIN, LAM_P] = idx_bus;
[F_BUS, T_BUS, BR_R, BR_X, BR_B, RATE_A, RATE_B, RATE_C, TAP, SHIFT, ...
 BR_STATUS, PF, QF, PT, QT, MU_SF, MU_ST] = idx_brch;
[GEN_BUS, PG, QG, QMAX, QMIN, VG, MBASE, GEN_STATUS, PMAX, PMIN] = idx_gen;
[PW_LINEAR, POLYNOMIAL, MODEL] = idx_cost;

v = mpver('all');
pg_ver = regexp(fileread(fullfile(PG_DIR, 'CHANGELOG.md')), '### v([0-9.]+)', ...
                'tokens', 'once');
if isempty(pg_ver), pg_ver = {'unknown'}; end
meta = {'generator', 'tests/data/reference/make_reference.m (Octave + MATPOWER)';
        'octave_version', OCTAVE_VERSION;
        'matpower_version', v.Version;
        'mp_opt_model_version', mpomver();
        'mips_version', mipsver();
        'pglib_opf_version', pg_ver{1}};

% MATPOWER data/case*.m and PGLib opf/pglib_opf_*.m, in sorted name order
files = {};
d = dir(fullfile(MP_DIR, 'data', 'case*.m'));
names = sort({d.name});
for i = 1:numel(names)
  files(end+1, :) = {['matpower:' names{i}(1:end-2)], fullfile(MP_DIR, 'data', names{i})};
end
d = dir(fullfile(PG_DIR, 'pglib_opf_*.m'));
names = sort({d.name});
for i = 1:numel(names)
  files(end+1, :) = {['pglib:' names{i}(1:end-2)], fullfile(PG_DIR, names{i})};
end

%% ---------------------------------------------------------------- 1. loadcase
lc = {'_meta', meta};
skipped = {};
for i = 1:rows(files)
  key = files{i, 1};
  try
    mpc = loadcase(files{i, 2});
  catch err
    skipped{end+1} = {'key', key; 'reason', ['loadcase error: ' err.message]};
    continue;
  end
  if ~isstruct(mpc) || ~all(isfield(mpc, {'baseMVA', 'bus', 'gen', 'branch'}))
    skipped{end+1} = {'key', key; 'reason', 'not a MATPOWER case struct'};
    continue;
  end
  nb = rows(mpc.bus);
  if nb > MAX_BUS
    skipped{end+1} = {'key', key; 'reason', sprintf('n_bus = %d > %d', nb, MAX_BUS)};
    continue;
  end
  bus = mpc.bus; br = mpc.branch; gen = mpc.gen;
  live = bus(:, BUS_TYPE) ~= NONE;          % not isolated
  gon  = gen(:, GEN_STATUS) > 0;
  if isfield(mpc, 'gencost') && ~isempty(mpc.gencost)
    models = unique(mpc.gencost(:, MODEL))';
    ncost = rows(mpc.gencost);
  else
    models = zeros(1, 0);
    ncost = 0;
  end
  lc(end+1, :) = {key, {
    'n_bus',                   nb;
    'n_bus_isolated',          sum(~live);
    'n_branch',                rows(br);
    'n_branch_in_service',     sum(br(:, BR_STATUS) > 0);
    'n_gen',                   rows(gen);
    'n_gen_in_service',        sum(gon);
    'base_mva',                mpc.baseMVA;
    'total_load_mw',           sum(bus(live, PD));
    'total_load_mvar',         sum(bus(live, QD));
    'total_load_mw_all_buses', sum(bus(:, PD));
    'gen_capacity_mw',         sum(gen(gon, PMAX));
    'gen_pmin_mw',             sum(gen(gon, PMIN));
    'sum_branch_r',            sum(br(:, BR_R));
    'sum_branch_x',            sum(br(:, BR_X));
    'sum_branch_b',            sum(br(:, BR_B));
    'gencost_models',          {'__list__', num2cell(models)};
    'n_gencost_rows',          ncost}};
end
lc(end+1, :) = {'skipped', {'__list__', skipped}};
write_json(fullfile(OUT_DIR, 'matpower_loadcase.json'), lc);
printf('loadcase: %d cases, %d skipped (%.1f s)\n', rows(lc) - 2, numel(skipped), toc(t_start));

%% ---------------------------------------------------------------- 2. rundcopf
mpopt = mpoption('verbose', 0, 'out.all', 0);   % solver: opf.dc.solver = DEFAULT
dc_cases = {'matpower:case5', 'matpower:case9', 'matpower:case14', 'matpower:case30', ...
            'matpower:case39', 'matpower:case57', 'matpower:case118', 'matpower:case300', ...
            'pglib:pglib_opf_case5_pjm', 'pglib:pglib_opf_case14_ieee', ...
            'pglib:pglib_opf_case30_ieee', 'pglib:pglib_opf_case118_ieee', ...
            'pglib:pglib_opf_case300_ieee'};
dc = {'_meta', [meta; {
  'function', 'rundcopf(mpc, mpoption(''verbose'', 0, ''out.all'', 0))';
  'opf.dc.solver option', mpopt.opf.dc.solver;
  'note', ['"solver" per case is results.raw.output.alg: with opf.dc.solver = DEFAULT ' ...
           'MATPOWER picks the first available of Gurobi, CPLEX, MOSEK, HiGHS, GLPK (LP only), ' ...
           'BPMPD, MIPS; here GLPK for pure-LP costs, MIPS otherwise. lam_p is keyed by bus ' ...
           'number ($/MWh), pg is per gen row (MW), mu_sf/mu_st ($/MWh) are keyed by 1-based ' ...
           'branch row and list only rows where the multiplier is nonzero (exactly, as returned).']}]};
t0 = tic;
for i = 1:numel(dc_cases)
  key = dc_cases{i};
  file = files{strcmp(files(:, 1), key), 2};
  try
    r = rundcopf(loadcase(file), mpopt);
  catch err
    dc(end+1, :) = {key, {'success', false; 'error', err.message}};
    continue;
  end
  alg = 'unknown';
  if isfield(r, 'raw') && isfield(r.raw, 'output') && isfield(r.raw.output, 'alg')
    alg = r.raw.output.alg;
  end
  sf = find(r.branch(:, MU_SF) ~= 0);
  st = find(r.branch(:, MU_ST) ~= 0);
  dc(end+1, :) = {key, {
    'success', logical(r.success);
    'solver',  alg;
    'f',       r.f;
    'lam_p',   keyed(r.bus(:, BUS_I), r.bus(:, LAM_P));
    'pg',      r.gen(:, PG)';
    'mu_sf',   keyed(sf, r.branch(sf, MU_SF));
    'mu_st',   keyed(st, r.branch(st, MU_ST))}};
end
write_json(fullfile(OUT_DIR, 'matpower_dcopf.json'), dc);
printf('rundcopf: %d cases (%.1f s)\n', rows(dc) - 1, toc(t0));

%% ---------------------------------------------------------------- 3. runpf
mpopt = mpoption('verbose', 0, 'out.all', 0);   % pf.alg = NR (Newton) by default
pf_cases = {'matpower:case33bw', 'matpower:case69', 'matpower:case141', 'matpower:case85'};
pf = {'_meta', [meta; {
  'function', 'runpf(mpc, mpoption(''verbose'', 0, ''out.all'', 0))';
  'pf.alg option', mpopt.pf.alg;
  'note', ['vm (p.u.) and va (degrees) are keyed by bus number; loss_p_mw / loss_q_mvar are ' ...
           'sum(real/imag(get_losses(results))); vm_min_bus is the bus number of the ' ...
           'first bus attaining min(vm).']}]};
t0 = tic;
for i = 1:numel(pf_cases)
  key = pf_cases{i};
  file = files{strcmp(files(:, 1), key), 2};
  try
    r = runpf(loadcase(file), mpopt);
  catch err
    pf(end+1, :) = {key, {'success', false; 'error', err.message}};
    continue;
  end
  loss = get_losses(r);
  [vmin, imin] = min(r.bus(:, VM));
  entry = {'success', logical(r.success)};
  if isfield(r, 'iterations')
    entry(end+1, :) = {'iterations', r.iterations};
  end
  entry = [entry; {
    'loss_p_mw',   sum(real(loss));
    'loss_q_mvar', sum(imag(loss));
    'vm_min',      vmin;
    'vm_min_bus',  r.bus(imin, BUS_I);
    'vm',          keyed(r.bus(:, BUS_I), r.bus(:, VM));
    'va',          keyed(r.bus(:, BUS_I), r.bus(:, VA))}];
  pf(end+1, :) = {key, entry};
end
write_json(fullfile(OUT_DIR, 'matpower_pf.json'), pf);
printf('runpf: %d cases (%.1f s)\n', rows(pf) - 1, toc(t0));
printf('total: %.1f s\n', toc(t_start));
