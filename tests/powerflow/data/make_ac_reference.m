% AC power-flow reference for tests/powerflow/test_transmission_pf.py.
% Computed with MATPOWER's runpf (Newton, default options, Q limits not enforced) in Octave,
% outside tsodso. Run through make_ac_reference.sh, which puts MATPOWER on the path.
% Writes matpower_ac_pf.json: per case the bus, branch and generator results in case order.
% Numbers use %.17g (round-trips to the same double).

1;

function s = vec(x)
  x = x(:).';
  parts = arrayfun(@(v) sprintf('%.17g', v), x, 'UniformOutput', false);
  s = ['[', strjoin(parts, ', '), ']'];
end

cases = {'case9', 'case14', 'case30', 'case57', 'case118', 'case300'};
mpopt = mpoption('verbose', 0, 'out.all', 0);
out_dir = getenv('OUT_DIR');
fid = fopen(fullfile(out_dir, 'matpower_ac_pf.json'), 'w');
fprintf(fid, '{\n  "_meta": {"generator": "tests/powerflow/data/make_ac_reference.m", ');
fprintf(fid, '"octave_version": "%s", "matpower_version": "%s", ', OCTAVE_VERSION, mpver());
fprintf(fid, '"function": "runpf(mpc, mpoption(''verbose'', 0, ''out.all'', 0))"}');
for i = 1:numel(cases)
  r = runpf(loadcase(cases{i}), mpopt);
  loss = get_losses(r);
  fprintf(fid, ',\n  "matpower:%s": {\n', cases{i});
  fprintf(fid, '    "success": %d, "iterations": %d,\n', r.success, r.iterations);
  fprintf(fid, '    "loss_p_mw": %.17g, "loss_q_mvar": %.17g,\n', sum(real(loss)), sum(imag(loss)));
  fprintf(fid, '    "bus": %s,\n', vec(r.bus(:, 1)));
  fprintf(fid, '    "vm": %s,\n', vec(r.bus(:, 8)));
  fprintf(fid, '    "va": %s,\n', vec(r.bus(:, 9)));
  fprintf(fid, '    "pf": %s,\n', vec(r.branch(:, 14)));
  fprintf(fid, '    "qf": %s,\n', vec(r.branch(:, 15)));
  fprintf(fid, '    "pt": %s,\n', vec(r.branch(:, 16)));
  fprintf(fid, '    "qt": %s,\n', vec(r.branch(:, 17)));
  fprintf(fid, '    "pg": %s,\n', vec(r.gen(:, 2)));
  fprintf(fid, '    "qg": %s\n  }', vec(r.gen(:, 3)));
end
fprintf(fid, '\n}\n');
fclose(fid);
