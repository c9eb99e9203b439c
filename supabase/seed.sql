-- Demo data only: three practices, their staff, and the products they sell with the
-- programme each belongs to. Merchant accounts and their API keys are not seed data:
-- `make demo` creates them against the MX stand-in the way an operator would.

insert into auth.users (id, email)
values
('00000000-0000-4000-8000-000000000001', 'owner@northside-trt.example'),
('00000000-0000-4000-8000-000000000002', 'nurse@northside-trt.example'),
('00000000-0000-4000-8000-000000000003', 'owner@coastal-weightloss.example'),
('00000000-0000-4000-8000-000000000004', 'admin@summit-menshealth.example'),
('00000000-0000-4000-8000-000000000005', 'frontdesk@coastal-weightloss.example'),
('00000000-0000-4000-8000-000000000006', 'staff@summit-menshealth.example')
on conflict (id) do nothing;

-- Summit trusts the keyword suggestions: new products go straight to the suggested programme.
insert into app.practices (id, name, slug, timezone, auto_apply_suggestions)
values
('10000000-0000-4000-8000-000000000001', 'Northside TRT & Wellness', 'northside-trt', 'America/Chicago', false),
('10000000-0000-4000-8000-000000000002', 'Coastal Weight Loss', 'coastal-weightloss', 'America/Los_Angeles', false),
('10000000-0000-4000-8000-000000000003', 'Summit Men''s Health', 'summit-menshealth', 'America/Denver', true)
on conflict (id) do nothing;

insert into app.practice_members (practice_id, user_id, role)
values
('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000001', 'owner'),
('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', 'staff'),
('10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000003', 'owner'),
('10000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000004', 'admin'),
('10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000005', 'staff'),
('10000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000006', 'staff')
on conflict do nothing;

-- Products each practice has already mapped to a programme (confirmed by staff).
insert into app.products (practice_id, name, category_id, category_confirmed)
select
    p.practice_id::uuid as practice_id,
    p.product_name,
    c.id,
    true as category_confirmed
from (
    values
    ('10000000-0000-4000-8000-000000000001', 'Testosterone Cypionate 200mg/ml', 'TRT'),
    ('10000000-0000-4000-8000-000000000001', 'Enclomiphene 25mg', 'TRT'),
    ('10000000-0000-4000-8000-000000000001', 'BPC-157 5mg', 'Peptides'),
    ('10000000-0000-4000-8000-000000000001', 'Sermorelin 9mg', 'Peptides'),
    ('10000000-0000-4000-8000-000000000001', 'Lab Panel', 'Other'),
    ('10000000-0000-4000-8000-000000000002', 'Semaglutide 2.5mg', 'Weight Loss'),
    ('10000000-0000-4000-8000-000000000002', 'Tirzepatide 10mg', 'Weight Loss'),
    ('10000000-0000-4000-8000-000000000002', 'NAD+ 500mg', 'Peptides'),
    ('10000000-0000-4000-8000-000000000003', 'Sildenafil 20mg', 'ED'),
    ('10000000-0000-4000-8000-000000000003', 'Tadalafil 5mg', 'ED'),
    ('10000000-0000-4000-8000-000000000003', 'Testosterone Cypionate 200mg/ml', 'TRT')
) as p (practice_id, product_name, category_name)
inner join app.categories as c
    on c.practice_id = p.practice_id::uuid and p.category_name = c.name
on conflict (practice_id, name_key) do nothing;
