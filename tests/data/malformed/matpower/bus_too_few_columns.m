function mpc = bus_too_few_columns
%BUS_TOO_FEW_COLUMNS  bus matrix with 5 columns
%   A 3-bus case that is valid except for this one defect.

%% MATPOWER Case Format : Version 2
mpc.version = '2';

%%-----  Power Flow Data  -----%%
%% system MVA base
mpc.baseMVA = 100;

%% bus data
%	bus_i	type	Pd	Qd	Gs	Bs	area	Vm	Va	baseKV	zone	Vmax	Vmin
mpc.bus = [
	1	3	0	0	0;
	2	1	90	30	0;
	3	2	0	0	0;
];

%% generator data
%	bus	Pg	Qg	Qmax	Qmin	Vg	mBase	status	Pmax	Pmin
mpc.gen = [
	1	0	0	300	-300	1	100	1	250	10;
	3	0	0	300	-300	1	100	1	200	10;
];

%% branch data
%	fbus	tbus	r	x	b	rateA	rateB	rateC	ratio	angle	status	angmin	angmax
mpc.branch = [
	1	2	0.01	0.085	0.176	250	250	250	0	0	1	-360	360;
	1	3	0.017	0.092	0.158	250	250	250	0	0	1	-360	360;
	2	3	0.039	0.17	0.358	150	150	150	0	0	1	-360	360;
];

%%-----  OPF Data  -----%%
%% generator cost data
%	2	startup	shutdown	n	c(n-1)	...	c0
mpc.gencost = [
	2	0	0	3	0.11	5	150;
	2	0	0	3	0.085	1.2	600;
];
